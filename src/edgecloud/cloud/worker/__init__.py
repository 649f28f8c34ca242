"""The cloud Kafka worker (``edgecloud cloud worker``); run by ``cloud/main.py:worker``."""
