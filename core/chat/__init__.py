"""The Chat page's core: conversations, turns, what a turn shows, and exports."""
