"""Chat models and route classifiers: Gemini when keyed, local (offline) otherwise.

`context` holds the turn message contract shared by the graph and the
offline extractive model; `chat_models` builds the right model for the settings.
"""
