"""The cloud Kafka worker (``edgecloud cloud worker``); see ``service.run``."""
