"""Software side: the tANS codec (`sw.tans`), the `.tans` container, quantizers, compression methods, training, data, models, evaluation and the CLI. Never imports hw or sim."""
