"""Reward functions and answer checkers."""
