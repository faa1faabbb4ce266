"""The Streamlit page, in pieces: server-wide state, sidebar controls, live panels."""
