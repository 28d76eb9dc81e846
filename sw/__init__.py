"""Software side: the tANS codec, the `.tans` container and the compression pipeline."""
