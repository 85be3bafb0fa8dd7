"""Parallelism shared by training, generation and serving: device meshes, logical-axis sharding rules and joining a
multi-process job. Imports nothing from the package (models name their logical axes; this room maps them).

  sharding.py     the data x model mesh, logical-axis presets, parameter and batch shardings
  distributed.py  joining a multi-process job (TPU pods, SLURM, MPI, local CPU processes)
"""
