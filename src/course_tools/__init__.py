"""Maintainer tools (notebook sync, static checks of the full profile, the Colab check): not part of the learner's utils."""
