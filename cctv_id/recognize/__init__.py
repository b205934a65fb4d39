"""Face recognition: FaceEncoder backends producing Embeddings from aligned FaceCrops."""
