"""Training MAGNeT (and the codec): one sharded, jitted train step and the loop around it.

  masking.py         span masks at a target rate (audiocraft's rate table); the schedule is decoding/mask_schedule.py
  loss.py            level draw, masked inputs, the masked-level cross-entropy, CFG dropout
  optim.py           AdamW with warmup + cosine / inverse-sqrt, clipping, EMA; the train state
  trainer.py         `train(config, workdir)`: state init, the sharded train step, the loop
  loop.py            what every training loop shares (the LM's and the codec's)
  hooks.py           validation, samples and checkpoints between steps
  validation.py      per-level masked cross-entropy and accuracy on a fixed set
  samples.py         prompts generated with the current params during training
  checkpointing.py   orbax checkpoints with the data loader's state
  metrics_writer.py  TensorBoard event files beside metrics.jsonl
  finetune.py        what a fine-tuning run changes: initial params, trainable params, LoRA on a frozen base
  init.py            a run's LM params from another checkpoint (`init.source`), re-initialising chosen ones
  freezing.py        choosing parameters by path pattern and freezing the rest
  lora.py            LoRA's training side: the config section, target kernels, adapter init and axes
  codec.py           the codec's trainer (L1 + multi-scale mel + commitment) on corpus clips
  default_model.py   the shipped default model rebuilt from nothing (corpus -> tokens -> LM -> exported pipeline)
  aot.py             plans before hardware: the train step / decoder compiled for a TPU topology, memory, roofline
  chips.py           accelerators' peak FLOP/s, HBM and interconnect figures (with sources); slice names
"""
