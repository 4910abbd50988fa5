from django import forms
from django.conf import settings
from unfold.forms import AuthenticationForm
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from .models import TokenScope
from .roles import may_use_console

EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (180, "180 days"), (365, "1 year")]


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "e.g. nightly report script"}),
        help_text="What uses this token, so you can recognise it later.",
    )
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ, widget=UnfoldAdminSelectWidget)
    days = forms.TypedChoiceField(
        label="Expires in", coerce=int, initial=90, widget=UnfoldAdminSelectWidget,
        choices=[(d, label) for d, label in EXPIRY_CHOICES if d <= settings.API_TOKEN_MAX_DAYS],
    )


class LoginForm(AuthenticationForm):
    """Sign-in for role members, not only Django staff accounts."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct username and password. Both are case-sensitive.",
        "no_role": "Your account has no role yet. Ask an Admin to give you one.",
    }

    def confirm_login_allowed(self, user) -> None:
        if not may_use_console(user):
            raise forms.ValidationError(self.error_messages["no_role"], code="no_role")
