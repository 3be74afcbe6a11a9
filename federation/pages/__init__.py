"""Self-contained HTML pages for people: the analyst's review page and the run's report page.

Each page is one file with its styles, script and data inside (no external asset, script
or font), so that it opens offline in any browser and can travel inside a case file. Data
goes in as JSON in a ``<script type="application/json">`` element and the review page's
script builds the DOM with ``textContent``: chat text is never parsed as HTML.
:mod:`.review` draws the review page, :mod:`.report_page` the report page.
"""
