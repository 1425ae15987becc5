"""Every output behind one table (outputs.OUTPUTS): text, many-model text, JSON, HTML, JUnit XML, Markdown.

Sentences are made here; data models carry codes and numbers.
"""
