"""regdemo's page: `streamlit run app.py`. Everything lives in regdemo/ui/."""

from regdemo.ui.page import main

main()
