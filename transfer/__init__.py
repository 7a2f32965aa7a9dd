"""Zero-shot prediction on unseen families and fine-tuning on a new family."""
