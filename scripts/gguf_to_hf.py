#!/usr/bin/env python3
"""Lays out a llama.cpp GGUF causal LM (llama architecture, GPT-2-style byte-level BPE vocabulary) as a plain
Hugging Face model directory, so that kotsu's tests can run transformers on the same real weights kotsu reads.
Run by scripts/setup in the reference environment (assets/refenv/bin/python): never by kotsu itself.
usage: gguf_to_hf.py FILE.gguf OUT_DIR

- weights: transformers' own GGUF loader (transformers.modeling_gguf_pytorch_utils through from_pretrained
  with gguf_file=; it dequantizes with the gguf package and undoes llama.cpp's query/key row permutation),
  saved as float32 model.safetensors. A GGUF without output.weight ties the output layer to the token
  embedding, as llama.cpp does; transformers 4.46's GGUF config says untied and leaves lm_head random there,
  so the config is tied here and lm_head is not saved.
- tokenizer: built from the GGUF's vocabulary and merges with the tokenizers library, pre-tokenized as
  llama.cpp pre-tokenizes the file's tokenizer.ggml.pre (only the ones listed in PRE below), every control
  token (token type 3) a special added token, BOS/EOS added only where the file's add_bos/add_eos say so.
  transformers 4.46's GGUF tokenizer converter builds a different one for these files (a BOS added although
  the file says not to, EOS = BOS, digits not split as llama.cpp splits them), so it is not used.
- config.json, generation_config.json, tokenizer_config.json (the file's chat template and special tokens)."""
import json
import os
import sys

import torch
from gguf import GGUFReader, GGUFValueType
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedTokenizerFast

# llama.cpp's pre-tokenizers (llama-vocab.cpp) by tokenizer.ggml.pre, as tokenizers pre-tokenizers
PRE = {
    "gpt2": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    "default": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    # "\p{N}" first, then GPT-2's pattern
    "smollm": lambda: pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
}


def field(reader, key, default=None):
    """A metadata value: a number, bool or string, or a list of them."""
    f = reader.fields.get(key)
    if f is None:
        return default
    kind = f.types[0]
    if kind == GGUFValueType.ARRAY:
        if f.types[1] == GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    if kind == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]].tolist()[0]


def main():
    gguf_path, out = sys.argv[1], sys.argv[2]
    reader = GGUFReader(gguf_path)
    arch = field(reader, "general.architecture")
    if arch != "llama" or field(reader, "tokenizer.ggml.model") != "gpt2":
        sys.exit(f"gguf_to_hf: {gguf_path}: only llama-architecture files with a gpt2 vocabulary are laid out (this is {arch})")
    pre = field(reader, "tokenizer.ggml.pre", "default")
    if pre not in PRE:
        sys.exit(f"gguf_to_hf: {gguf_path}: tokenizer.ggml.pre '{pre}' is not one this script knows")
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    bos, eos = field(reader, "tokenizer.ggml.bos_token_id"), field(reader, "tokenizer.ggml.eos_token_id")
    pad, unk = field(reader, "tokenizer.ggml.padding_token_id", eos), field(reader, "tokenizer.ggml.unknown_token_id")
    add_bos, add_eos = bool(field(reader, "tokenizer.ggml.add_bos_token", False)), bool(field(reader, "tokenizer.ggml.add_eos_token", False))
    tied = not any(t.name == "output.weight" for t in reader.tensors)

    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(gguf_path)), gguf_file=os.path.basename(gguf_path),
                                                 torch_dtype=torch.float32)
    if tied:
        model.config.tie_word_embeddings = True
        model.tie_weights()
    model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id = bos, eos, pad
    model.generation_config = GenerationConfig(bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)

    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = PRE[pre]()
    tok.decoder = decoders.ByteLevel()
    single = ([f"{tokens[bos]}:0"] if add_bos else []) + ["$A:0"] + ([f"{tokens[eos]}:0"] if add_eos else [])
    specials = [(tokens[i], i) for i in {bos, eos} if (i == bos and add_bos) or (i == eos and add_eos)]
    tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                              processors.TemplateProcessing(single=" ".join(single), special_tokens=specials)]) \
        if specials else processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t == 3])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=tokens[bos], eos_token=tokens[eos], pad_token=tokens[pad],
                                   unk_token=tokens[unk] if unk is not None else None, model_max_length=field(reader, "llama.context_length"),
                                   chat_template=field(reader, "tokenizer.chat_template"), clean_up_tokenization_spaces=False,
                                   model_input_names=["input_ids", "attention_mask"])
    fast.save_pretrained(out)
    config_path = os.path.join(out, "config.json")  # without this machine's paths
    with open(config_path) as f:
        config = json.load(f)
    for key in ("_name_or_path", "_model_name_or_path"):
        config.pop(key, None)
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    with open(os.path.join(out, "gguf_source.json"), "w") as f:
        json.dump({"gguf": os.path.basename(gguf_path), "tied_output": tied, "pre_tokenizer": pre}, f, indent=1)


if __name__ == "__main__":
    main()
