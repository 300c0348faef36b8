"""Compare and the leaderboard: rounds, sessions and votes, exports, recommendations."""
