"""The registered evaluation models (`evaluation/registry.py`), one module each defining `MODEL`: ast_audioset
(AST AudioSet classifier), clap (CLAP text-audio scorer), encodec (EnCodec encoder embeddings), musicnn (shipped
embedder and tag classifier), vggish (VGGish embedder)."""
