"""Every output: text, many-model text, HTML, JUnit XML. Sentences are made here; data models carry codes and numbers."""
