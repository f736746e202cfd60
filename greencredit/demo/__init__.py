"""`greencredit demo`: the simulator, the engine and a live view, end to end."""
