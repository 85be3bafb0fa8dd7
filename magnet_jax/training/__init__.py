"""Training MAGNeT (and the codec): one sharded, jitted train step and the loop around it.

  masking.py        span masks at a target rate (audiocraft's rate table); the schedule is decoding/mask_schedule.py
  loss.py           level draw, masked inputs, the masked-level cross-entropy, CFG dropout
  optim.py          AdamW with warmup + cosine / inverse-sqrt, clipping, EMA
  sharding.py       the data x model mesh and logical-axis presets
  distributed.py    joining a multi-process job (TPU pods, SLURM, MPI)
  checkpointing.py  orbax checkpoints with the data loader's state
  trainer.py        `train(config, workdir)`: state init, the train step, the loop
  codec.py          the codec's trainer (L1 + multi-scale mel + commitment), codec_data.py its corpus clips
  aot.py            plans before hardware: the train step / decoder compiled for a TPU topology, memory, roofline
  chips.py          accelerators' peak FLOP/s, HBM and interconnect figures (with sources); slice names
"""
