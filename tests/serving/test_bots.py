"""Bot filtering: the maintained crawler list classes robots; real app and browser traffic
stays valid (an Android app's OkHttp once counted as a robot, so app traffic was never
billed)."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from adserver.serving import bots

PEOPLE = [
    *bots.APP_AGENTS,
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
    " Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "okhttp/5.0.0-alpha.14",
    "MyShop/3.1 (iPhone; iOS 18.0; Scale/3.00)",
]
ROBOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.32.3",
    "python-httpx/0.27.0",
    "Go-http-client/1.1",
    "Java/17.0.2",
    "axios/1.7.2",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " HeadlessChrome/126.0.0.0 Safari/537.36",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
]


@pytest.mark.parametrize("ua", PEOPLE)
def test_apps_and_browsers_are_people(ua: str) -> None:
    assert bots.why_invalid(Headers({"user-agent": ua})) is None


@pytest.mark.parametrize("ua", ROBOTS)
def test_robots_are_robots(ua: str) -> None:
    assert bots.why_invalid(Headers({"user-agent": ua})) == "robot user agent"


def test_the_list_is_the_maintained_one() -> None:
    import crawleruseragents

    # nearly every pattern of the list is used: only those that match an app's stack are not
    assert len(bots._patterns()) >= len(crawleruseragents.CRAWLER_USER_AGENTS_DATA) - 5
    assert bots.why_invalid(Headers({})) == "no user agent"
    assert (
        bots.why_invalid(Headers({"user-agent": PEOPLE[-1], "sec-purpose": "prefetch"}))
        == "prefetch"
    )
