"""GGUF files: their header (header.py), model facts and vocabulary (metadata.py) and the
checks run before a load (check.py), read without llama.cpp; a Hugging Face tokenizer rebuilt
from the vocabulary (tokenizer.py); and llama.cpp's own load, log and vocabulary
(llama_load.py). Modules here import the third-party `gguf` package by its absolute name;
this subpackage does not shadow it."""
