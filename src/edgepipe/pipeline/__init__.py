"""The recipe: one YAML file from a trained model to artifacts and a deployment report."""
