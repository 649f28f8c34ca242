"""The edge's model side: the holder the agent infers through, and the model agent that makes
the node run the cloud's desired model (fetch, verify, shadow, swap; issue 6).

``holder`` (the active/previous pair the agent reads between batches), ``agent`` (the poll ->
download -> verify -> shadow -> swap loop), ``fetch`` (the node's HTTP client of the cloud API),
``shadow`` (the candidate-beside-active gate), ``state`` (``state.json``), ``settings``.
"""
