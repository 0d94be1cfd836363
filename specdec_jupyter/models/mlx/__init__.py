"""MLX model folders: their facts (metadata.py), GGUF -> MLX conversion (convert.py) and the
catalog models' converted folders (catalog.py). Modules here import the third-party `mlx`
package by its absolute name; this subpackage does not shadow it."""
