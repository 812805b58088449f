"""Reasoning tasks, dataset loaders, prompt templates and the shared DataModule."""

from r1.data.datamodule import ReasoningDataModule
from r1.data.problem import Problem
from r1.data.templates import PromptTemplate

__all__ = ["Problem", "PromptTemplate", "ReasoningDataModule"]
