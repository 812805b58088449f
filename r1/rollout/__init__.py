"""Rollout engines (HF, vLLM), the Rollout record, and the producer of one RL step's data."""
