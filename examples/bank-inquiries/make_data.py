#!/usr/bin/python3
"""Writes the built-in demo task: customer inquiries to a bank, six intents, generated from hand-written
templates with a fixed seed (train.csv 360 rows, test.csv 120 rows of new combinations), and words.txt
(the vocabulary the demo's tiny model is built with)."""
import csv
import os
import random
import sys

INTENTS = {
    "card_lost": [
        "i lost my {card} {when}", "my {card} was stolen {when}", "someone took my {card}, please block it",
        "i cannot find my {card} anywhere", "how do i freeze my {card} after losing it", "{card} missing since {when}, what now",
        "please cancel my stolen {card}", "i think i left my {card} at the {place}",
    ],
    "balance": [
        "how much money is in my {account}", "what is the balance of my {account}", "show me my {account} balance",
        "can you tell me how much i have in {account}", "check the balance on my {account} please",
        "i want to know my {account} balance {when}", "what funds are left in my {account}",
    ],
    "transfer": [
        "i want to send {amount} to my {person}", "how do i transfer {amount} to another bank",
        "please move {amount} from my {account} to savings", "transfer {amount} to my {person} {when}",
        "my transfer of {amount} did not arrive", "can i wire {amount} abroad", "send money to my {person} please",
    ],
    "loan": [
        "what is the interest rate for a {loan}", "i want to apply for a {loan}", "can i get a {loan} of {amount}",
        "how long does a {loan} approval take", "what do i need to borrow {amount}", "am i eligible for a {loan}",
        "tell me about your {loan} rates",
    ],
    "fee_refund": [
        "why was i charged a fee {when}", "i want a refund for the {fee} fee", "there is a {fee} fee i do not recognise",
        "please refund the {fee} charge", "you charged me twice for the {fee} fee", "how do i dispute a {fee} fee",
        "remove the {fee} fee from my {account}",
    ],
    "address_change": [
        "i moved and need to update my address", "how do i change my address {when}", "please update my home address",
        "my address is wrong on my {account}", "i want to change the address for my {card}",
        "where can i update my contact details", "new address, how do i tell the bank",
    ],
}
SLOTS = {
    "card": ["card", "debit card", "credit card", "bank card", "visa card"],
    "when": ["yesterday", "today", "last week", "this morning", "on friday", "two days ago"],
    "place": ["restaurant", "shop", "airport", "station", "office"],
    "account": ["account", "checking account", "savings account", "current account", "joint account"],
    "amount": ["50 euros", "100 dollars", "200 pounds", "1000 yen", "500 dollars", "money"],
    "person": ["mother", "friend", "landlord", "brother", "wife", "son"],
    "loan": ["mortgage", "car loan", "personal loan", "student loan", "home loan"],
    "fee": ["overdraft", "atm", "foreign transaction", "monthly", "late payment"],
}


def fill(rng, template):
    out = template
    for k, vals in SLOTS.items():
        while "{" + k + "}" in out:
            out = out.replace("{" + k + "}", rng.choice(vals), 1)
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    rng = random.Random(2024)
    train, test, seen = [], [], set()
    for intent, templates in INTENTS.items():
        rows = []
        tries = 0
        while len(rows) < 80 and tries < 10000:
            tries += 1
            s = fill(rng, rng.choice(templates))
            if rng.random() < 0.3:
                s = s.capitalize() + rng.choice(["?", ".", "!", ""])
            if s.lower() in seen:
                continue
            seen.add(s.lower())
            rows.append((s, intent))
        train += rows[:60]
        test += rows[60:80]
    rng.shuffle(train)
    rng.shuffle(test)
    for name, rows in (("train.csv", train), ("test.csv", test)):
        with open(os.path.join(out, name), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "intent"])
            w.writerows(rows)
    words = set()
    for s, _ in train + test:
        for tok in s.lower().replace(",", " ").replace("?", " ").replace(".", " ").replace("!", " ").split():
            words.add(tok)
    with open(os.path.join(out, "words.txt"), "w") as f:
        f.write("\n".join(sorted(words)) + "\n")


if __name__ == "__main__":
    main()
