"""Image captioning: the generated scenes data set (Show, Attend and Tell style)."""
