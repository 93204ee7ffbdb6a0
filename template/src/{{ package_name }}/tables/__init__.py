"""Tables with pandas: reading and writing CSV / Parquet, and contract checks of a table's model inputs."""
