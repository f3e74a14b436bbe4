//! The malomo-mcp generator.
