"""Device simulation: realistic sensor data (``data``) and an MQTT publisher (``publisher``)."""
