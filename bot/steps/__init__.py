"""The loop's steps, one module each, in the order the loop runs them."""
