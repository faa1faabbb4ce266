"""regdemo's page: `streamlit run app.py`. Everything lives in regdemo/ui/.

Streamlit runs this file as the page's script (`__main__`); `streamlit run` also finds the
`st.App` below and serves it, which adds the live board's feed beside the page.
"""

import streamlit as st

if __name__ == "__main__":
    from regdemo.ui.page import main

    main()
else:
    from regdemo.ui.routes import routes

    app = st.App(__file__, routes=routes())
