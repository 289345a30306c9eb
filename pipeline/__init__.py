"""Videos in, Parquet out: decoding, landmark tracking, registration, batched AU inference."""
