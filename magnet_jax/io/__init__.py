"""Weights and files on disk: safetensors parameter files, atomic writes, the restricted reader of PyTorch
checkpoints (no torch, no code execution), audiocraft's state-dict layout, finding model folders, and the one error
type they raise.

  errors.py         CheckpointError (and Cancelled)
  files.py          atomic writes (temporary file beside the target, renamed into place), sha256 of a file
  params.py         parameter trees <-> safetensors files, JSON beside them
  torch_pickle.py   torch.save zip files read by a restricted unpickler
  tf_checkpoint.py  TensorFlow checkpoints read without TensorFlow
  audiocraft.py     audiocraft LM state dicts -> Flax params and MagnetConfig
  folders.py        finding transformers folders (t5-base, encodec_32khz) beside a checkpoint or in the Hub cache
  hub.py            Hugging Face Hub names: huggingface_hub's cache, downloads, one line offline
"""
