"""Chats and their turns: every query is scoped to a user id and refuses to run without one."""
