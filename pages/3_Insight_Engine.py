from ui import engine_page

engine_page.show("insight")
