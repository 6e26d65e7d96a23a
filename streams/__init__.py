"""The Faust app, its topics and agents, and the pure functions the agents call."""
