"""The device registry (issue 16): each device's identity, the node whose broker admits it,
and how it authenticates (a password, stored only as its Mosquitto PBKDF2 hash, or an X.509
certificate of the fleet CA, stored as its fingerprint). Every change is audited."""
