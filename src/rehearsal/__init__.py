"""The full-profile rehearsal: FakeHub, stand-in builders and the runner (not part of `utils`)."""
