"""Reading and writing alert files (Avro container, Parquet, JSON lines, dead-letter)."""
