"""The LightningDataModule every stage shares: problems -> held-out split -> batches."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from r1.algorithms.padding import pad_left
from r1.checks import ConfigError, check_choice, check_int
from r1.data.curriculum import Curriculum, problem_levels
from r1.data.pass_rates import pass_rate_filter
from r1.data.problem import Problem
from r1.data.sft import collate_packed, collate_sft, pack_examples, tokenize_example
from r1.data.templates import PromptTemplate

log = logging.getLogger(__name__)

# The held-out split never depends on the run seed, so runs with different seeds are scored
# on the same problems.
SPLIT_SEED = 1234
TRAIN_FORMATS = ("sft", "prompts")


def split_problems(
    source, num_train: int, num_val: int, seed: int
) -> tuple[list[Problem], list[Problem]]:
    """Deterministic (train, held-out) split with no question in both.

    `source` is a procedural task (has `generate(n, seed)`: held-out problems come from a
    fixed seed, training ones from `seed`), a callable returning a finite list of problems
    (shuffled with a fixed seed; the first `num_val` are held out), or a source that splits
    itself (`split(num_train, num_val, seed)`: r1.data.mixture.SFTMixture).
    """
    if hasattr(source, "split"):
        return source.split(num_train, num_val, seed)
    if hasattr(source, "generate"):
        val = source.generate(num_val, SPLIT_SEED)
        held_out = {p.question for p in val}
        train: list[Problem] = []
        batch_seed = seed
        while len(train) < num_train:
            fresh = [
                p for p in source.generate(num_train, batch_seed) if p.question not in held_out
            ]
            if not fresh:
                raise ConfigError(
                    f"the {num_val} held-out problems take every question the task can pose: "
                    "no training problem is left; lower data.num_val"
                )
            train.extend(fresh[: num_train - len(train)])
            batch_seed += 10_007  # a new stream if the held-out set removed some
        return train, val
    problems = list(source())
    if len(problems) <= num_val:
        raise ConfigError(
            f"data has {len(problems)} problems; need more than data.num_val={num_val}"
        )
    random.Random(SPLIT_SEED).shuffle(problems)
    val, rest = problems[:num_val], problems[num_val:]
    held_out = {p.question for p in val}
    rest = [p for p in rest if p.question not in held_out]
    random.Random(seed).shuffle(rest)
    return rest[:num_train], val


class EpochShuffleSampler(Sampler[int]):
    """A fresh shuffle of range(num_items) per epoch, a pure function of (seed, epoch), that
    can start part-way into an epoch, so a resumed run draws exactly the batches the
    interrupted one would have. Lightning calls `set_epoch` before each epoch.

    With `num_replicas` > 1 (data-parallel ranks) every rank shuffles alike and takes every
    `num_replicas`-th item from `rank` on, after the tail is cut to a multiple of
    `num_replicas`: the ranks see disjoint items and the same number of them."""

    def __init__(
        self,
        num_items: int,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        curriculum: tuple[Curriculum, list[int], int] | None = None,
    ):
        """curriculum: (the curriculum, each item's level, items per batch on one rank)."""
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.num_items, self.seed = num_items, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.curriculum = curriculum
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, items of this rank to skip)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, items_done: int) -> None:
        self._resume = (epoch, items_done)

    def __iter__(self):
        order = torch.randperm(
            self.num_items, generator=torch.Generator().manual_seed(self.seed + self.epoch)
        ).tolist()
        order = order[: len(self)]  # cut the tail, then deal it out rank by rank
        if self.curriculum is not None:
            curriculum, levels, batch_size = self.curriculum
            batch_items = batch_size * self.num_replicas
            first_batch = self.epoch * (len(self) // batch_items)
            order = curriculum.reorder(order, levels, first_batch, batch_items)
        mine = order[self.rank :: self.num_replicas] if self.num_replicas > 1 else order
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            skip, self._resume = self._resume[1], None
        yield from mine[skip:]

    def __len__(self) -> int:
        return self.num_items - self.num_items % self.num_replicas


class PositionedDataLoader(DataLoader):
    """A DataLoader resumable mid-epoch: its data module restores the position (the epoch
    and the batches done, in its own state_dict) into the sampler before the loader is made.
    The two methods tell Lightning so; the loader itself has nothing more to save."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def shard_for_rank(items: Sequence[Any], num_replicas: int, rank: int) -> list[tuple[Any, bool]]:
    """(item, is_padding) pairs: every `num_replicas`-th item from `rank` on, padded with
    repeats to the longest shard, so every rank runs the same number of batches (sharded
    models gather parameters collectively in each forward). Padding is left out of metrics."""
    mine = [(item, False) for item in items[rank::num_replicas]]
    longest = -(-len(items) // num_replicas)
    padding = [(items[i % len(items)], True) for i in range(longest - len(mine))]
    return mine + padding


class ReasoningDataModule(L.LightningDataModule):
    """Problems from a task or dataset, rendered with a prompt template and tokenised.

    Training batches, `train_format=sft`: `input_ids`, `labels` and `attention_mask` (or
    `position_ids` when packing) [B, T]; `train_format=prompts` (RL): see `prompt_batch`. Validation batches add what held-out generation needs: `prompt_ids` and
    `prompt_mask` [B, P] left-padded, `prompts` (the rendered strings) and `problems`.
    """

    def __init__(
        self,
        source: Any,
        template: PromptTemplate | Mapping[str, Any] | None = None,
        tokenizer=None,
        num_train: int = 2000,
        num_val: int = 100,
        batch_size: int = 16,
        val_batch_size: int = 50,
        max_length: int = 512,
        packing: bool = False,
        seed: int = 0,
        num_workers: int = 0,
        language: str | None = None,
        train_format: str = "sft",
        curriculum: Mapping[str, Any] | None = None,
        pass_rates: Mapping[str, Any] | None = None,
    ):
        """curriculum: {ramp_batches: N} (RL prompts): r1.data.curriculum.Curriculum.
        pass_rates: {path, low, high}: train only on problems the policy solves sometimes
        (r1.data.pass_rates)."""
        super().__init__()
        check_choice("data.train_format", train_format, TRAIN_FORMATS)
        for key, value in (("num_train", num_train), ("num_val", num_val)):
            check_int(f"data.{key}", value, 1)
        for key, value in (("batch_size", batch_size), ("val_batch_size", val_batch_size)):
            check_int(f"data.{key}", value, 1)
        check_int("data.max_length", max_length, 8)
        self.train_format = train_format
        if curriculum is not None and train_format != "prompts":
            raise ConfigError(
                "data.curriculum orders RL prompts; SFT (train_format=sft) takes none"
            )
        self.curriculum = Curriculum(**dict(curriculum)) if curriculum is not None else None
        self.pass_rates = pass_rate_filter(pass_rates)
        self.pass_rate_counts: dict[str, int] = {}
        source_language = getattr(source, "language", None)
        if language is not None and source_language is not None and language != source_language:
            raise ConfigError(
                f"data.language={language!r} but the data source poses problems in "
                f"{source_language!r}; set it on the source (data.source.language)"
            )
        if isinstance(template, Mapping) or template is None:
            template = PromptTemplate(**dict(template or {}))
        self.source = source
        self.template = template
        self.tokenizer = tokenizer
        self.num_train, self.num_val = num_train, num_val
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.max_length, self.packing = max_length, packing
        self.seed, self.num_workers = seed, num_workers
        self.train_problems: list[Problem] = []
        self.val_problems: list[Problem] = []
        self.prompts_dropped: dict[str, int] = {}  # split -> prompts longer than max_length
        self._refill_rng = random.Random(seed + 1)
        self._resume_position: tuple[int, int] | None = None  # (epoch, batches done)

    def setup(self, stage: str | None = None) -> None:
        if self.train_problems:
            return
        if self.tokenizer is None:
            raise ValueError("ReasoningDataModule needs a tokenizer before setup()")
        train, val = split_problems(self.source, self.num_train, self.num_val, self.seed)
        if self.pass_rates is not None:
            train, self.pass_rate_counts = self.pass_rates.apply(train)
            log.info("data.pass_rates: %s of the training problems", self.pass_rate_counts)
        if self.train_format == "prompts":
            train = self._drop_long_prompts(train, "training")
        self.train_problems, self.val_problems = train, val

    def _drop_long_prompts(self, problems: list[Problem], split: str) -> list[Problem]:
        """RL prompts longer than data.max_length are left out (and counted), never truncated:
        a cut-off question has no right answer. (Held-out prompts are all kept, so every run
        is scored on the same set.)"""
        kept = [p for p in problems if len(self._prompt_ids(self.prompt(p))) <= self.max_length]
        dropped = len(problems) - len(kept)
        self.prompts_dropped[split] = dropped
        if dropped:
            log.warning(
                "left out %d of %d %s problems whose prompts are longer than data.max_length=%d",
                dropped,
                len(problems),
                split,
                self.max_length,
            )
        if not kept:
            raise ConfigError(
                f"every {split} prompt is longer than data.max_length={self.max_length} tokens; "
                "raise data.max_length"
            )
        return kept

    def _prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def state_dict(self) -> dict[str, Any]:
        """Where the training data stream stands, for an exact resume: the epoch, the batches
        of it already trained on, and the dynamic-sampling refill generator."""
        state: dict[str, Any] = {"refill_rng": self._refill_rng.getstate()}
        trainer = self.trainer
        if trainer is not None:
            state["epoch"] = trainer.current_epoch
            state["batches_done"] = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._refill_rng.setstate(state["refill_rng"])
        if "epoch" in state:
            self._resume_position = (state["epoch"], state["batches_done"])

    def prompt(self, problem: Problem) -> str:
        return self.template.render(problem.question, self.tokenizer)

    def target(self, problem: Problem) -> str:
        """What SFT trains on: a sampled trace verbatim (`meta["completion"]`: rejection
        sampling, distillation), else the worked solution in the template's think/answer form."""
        completion = problem.meta.get("completion")
        if isinstance(completion, str) and completion.strip():
            prefix = self.template.response_prefix
            if prefix and not completion.startswith(prefix):
                raise ConfigError(
                    f"data.template.response_prefix={prefix!r} opens every response, but the "
                    f"completion of {problem.question[:60]!r} does not start with it "
                    f"({completion[:40]!r}): responses without a chain of thought need "
                    "response_prefix=''"
                )
            return completion.removeprefix(prefix)  # the prompt has it
        if not problem.solution:
            raise ValueError(
                f"SFT needs worked solutions or sampled completions, but problem "
                f"{problem.question[:60]!r} has neither (set solution_field for JSONL data, or "
                "use scripts/sample.py's sft.jsonl)"
            )
        language = problem.meta.get("language", "en")
        return self.template.completion_for(problem.solution, problem.answer, language)

    def sft_examples(self, problems: Sequence[Problem]):
        examples, dropped = [], 0
        for problem in problems:
            example = tokenize_example(self.tokenizer, self.prompt(problem), self.target(problem))
            if len(example.input_ids) > self.max_length:
                dropped += 1
                continue
            examples.append(example)
        if dropped:
            log.warning(
                "dropped %d of %d SFT examples longer than data.max_length=%d",
                dropped,
                len(problems),
                self.max_length,
            )
        if not examples:
            raise ValueError(f"every SFT example is longer than data.max_length={self.max_length}")
        return examples

    def prompt_batch(self, problems: Sequence[Problem]) -> dict[str, Any]:
        """What an RL step starts from: `problems`, rendered `prompts`, and `prompt_ids`
        (a list of token-id lists, unpadded: the rollout engine pads)."""
        prompts = [self.prompt(p) for p in problems]
        ids = [self._prompt_ids(p) for p in prompts]
        too_long = [len(i) for i in ids if len(i) > self.max_length]
        if too_long:
            raise ValueError(
                f"{len(too_long)} prompts are longer than data.max_length={self.max_length} "
                f"tokens (longest {max(too_long)})"
            )
        return {"problems": list(problems), "prompts": prompts, "prompt_ids": ids}

    def random_problems(self, k: int) -> list[Problem]:
        """k training problems drawn at random (refills for dynamic sampling)."""
        return self._refill_rng.choices(self.train_problems, k=k)

    def random_prompt_batch(self, k: int) -> dict[str, Any]:
        """The prompt source of dynamic-sampling refills (r1.rollout.producer.PromptSource):
        a prompt batch of k problems from the refill generator, saved with the data position."""
        return self.prompt_batch(self.random_problems(k))

    def train_dataloader(self) -> DataLoader:
        if self.train_format == "prompts":
            curriculum = None
            if self.curriculum is not None:
                levels = problem_levels(self.train_problems)
                curriculum = (self.curriculum, levels, self.batch_size)
            return self._shuffled(
                self.train_problems, self.prompt_batch, drop_last=True, curriculum=curriculum
            )
        examples = self.sft_examples(self.train_problems)
        pad = self.tokenizer.pad_token_id
        if self.packing:
            return self._shuffled(
                pack_examples(examples, self.max_length), lambda b: collate_packed(b, pad)
            )
        return self._shuffled(examples, lambda b: collate_sft(b, pad))

    def _shuffled(self, items, collate, drop_last: bool = False, curriculum=None) -> DataLoader:
        sampler = EpochShuffleSampler(
            len(items), self.seed, *self._data_parallel(), curriculum=curriculum
        )
        if self._resume_position is not None:
            epoch, batches_done = self._resume_position
            sampler.resume_at(epoch, batches_done * self.batch_size)
            self._resume_position = None
        return PositionedDataLoader(
            items,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            # Iterator creation draws a seed from this generator, not the global RNG, so
            # starting an epoch (or resuming) leaves the sampling RNG untouched.
            generator=self._generator(),
            drop_last=drop_last,
        )

    def _data_parallel(self) -> tuple[int, int]:
        """(num_replicas, rank) of this process's data-parallel group; (1, 0) alone.
        (trainer.use_distributed_sampler is off: the data module shards its own batches.)"""
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return 1, 0
        kwargs = trainer.strategy.distributed_sampler_kwargs or {}
        return kwargs.get("num_replicas", trainer.world_size), kwargs.get(
            "rank", trainer.global_rank
        )

    def val_dataloader(self) -> DataLoader:
        pad = self.tokenizer.pad_token_id
        items = []
        for problem, padding in shard_for_rank(self.val_problems, *self._data_parallel()):
            prompt = self.prompt(problem)
            prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            has_target = problem.solution or problem.meta.get("completion")
            sft = (
                tokenize_example(self.tokenizer, prompt, self.target(problem))
                if has_target
                else None
            )
            items.append((problem, prompt, prompt_ids, sft, padding))
        return DataLoader(
            items,
            batch_size=self.val_batch_size,
            shuffle=False,
            collate_fn=lambda b: self._collate_val(b, pad),
        )

    @staticmethod
    def _collate_val(items, pad: int) -> dict[str, Any]:
        problems, prompts, prompt_ids, sft, padding = zip(*items)
        batch: dict[str, Any] = {
            "problems": list(problems),
            "padding": list(padding),  # True: a repeat that evens out the ranks' shards
            "prompts": list(prompts),
            "prompt_ids": pad_left(prompt_ids, pad),
            "prompt_mask": pad_left([[1] * len(p) for p in prompt_ids], 0),
        }
        if all(s is not None for s in sft):
            batch.update(collate_sft(sft, pad))
        return batch

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)
