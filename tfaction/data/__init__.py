"""TFRecord schemas, writers, readers, tf.data pipelines and converters."""
