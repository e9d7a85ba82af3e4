"""The Content-Security-Policy: enforced on the clinic pages and the patient portal, which carry no inline
script, no inline style and no ``hx-on`` (tests/clinic/test_front_end.py keeps it so), and sent as
report-only everywhere else (the admin and the API docs are third-party pages). Django's own CSP
middleware writes the headers; this middleware only chooses, by path, which policy is enforced."""

from django.utils.csp import CSP

STRICT = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
ENFORCED_PREFIXES = ("/clinic/", "/me/", "/c/")  # the clinic, the portal, check-in links


class StrictPagesCSPMiddleware:
    """Listed after Django's ContentSecurityPolicyMiddleware, so it sees the response first on the way out
    and marks clinic and portal responses to enforce STRICT before that middleware writes the header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(ENFORCED_PREFIXES) and not hasattr(response, "_csp_config"):
            response._csp_config = STRICT
        return response
