"""Infrastructure: settings, the bundled Kafka broker, topics, the CLI and process supervision."""
