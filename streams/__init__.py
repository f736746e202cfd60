"""What flows: the topic registry, the Avro wire-format codec, dead letters, masking."""
