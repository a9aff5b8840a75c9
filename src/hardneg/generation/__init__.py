"""LLM-written hard negatives: prompts, one OpenAI-compatible client, an embedded llama.cpp server."""

from hardneg.generation.generate import GenerationResult, generate, generate_async, generate_file

__all__ = ["GenerationResult", "generate", "generate_async", "generate_file"]
