"""Golden decoding, exactness check and accuracy of a `.tans` model, and per-layer reports with plots. Imports sw.container, sw.methods, sw.train, sw.data, sw.models."""
