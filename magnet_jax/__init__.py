"""magnet-jax: MAGNeT (Ziv et al., ICLR 2024) in JAX/Flax."""
