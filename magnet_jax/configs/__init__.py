"""ml_collections config files: `python train.py --config=configs/<name>.py [--config.section.key=value ...]`.

  base.py                    defaults every config shares (the model section: magnet-small-10secs)
  tiny.py                    a tiny MAGNeT that trains on one CPU in seconds (tests, smoke runs)
  small.py, small_30s.py     magnet-small (10 s, 30 s)
  medium.py, medium_30s.py   magnet-medium (10 s, 30 s)
  audio_small.py             audio-magnet-small (text-to-sound)
  audio_medium.py            audio-magnet-medium
  hybrid_small.py            hybrid-magnet-small (delay pattern, Hybrid-MAGNeT decoding)
  hybrid_medium.py           hybrid-magnet-medium
  default_model.py           the shipped default model (magnet_jax/assets/default)
  default_model_finetune.py  fine-tuning the shipped default on one's own tokens (full or LoRA)
  codec_default.py           the shipped codec
  codec_tiny.py              a tiny codec (tests, smoke runs)
"""
