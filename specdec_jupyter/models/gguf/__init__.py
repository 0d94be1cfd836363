"""GGUF files read without llama.cpp: their header (header.py), model facts and vocabulary
(metadata.py), the checks run before a load (check.py), and a Hugging Face tokenizer rebuilt
from the vocabulary (tokenizer.py). Modules here import the third-party `gguf` package by
its absolute name; this subpackage does not shadow it."""
